// Package apperr is Satu's one application error type: a stable code that
// clients can switch on, and a message a person can read. Internal failures
// carry the code Internal; their details are logged, never shown to users.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, documented error code (docs/errors.md). Codes never change
// meaning once published.
type Code string

// The codes. Keep docs/errors.md in step.
const (
	Internal          Code = "INTERNAL"
	MalformedJSON     Code = "MALFORMED_JSON"
	UnknownMethod     Code = "UNKNOWN_METHOD"
	InvalidParameter  Code = "INVALID_PARAMETER"
	InvalidQuantity   Code = "INVALID_QUANTITY"
	InvalidPrice      Code = "INVALID_PRICE"
	TooPrecise        Code = "TOO_PRECISE"
	UnknownSymbol     Code = "UNKNOWN_SYMBOL"
	UnknownAsset      Code = "UNKNOWN_ASSET"
	UnknownAccount    Code = "UNKNOWN_ACCOUNT"
	UnknownOrder      Code = "UNKNOWN_ORDER"
	UnknownMiner      Code = "UNKNOWN_MINER"
	NotLoggedOn       Code = "NOT_LOGGED_ON"
	Unauthenticated   Code = "UNAUTHENTICATED"
	BadSignature      Code = "BAD_SIGNATURE"
	StaleRequest      Code = "STALE_TIMESTAMP"
	Replayed          Code = "REPLAYED_REQUEST"
	RateLimited       Code = "RATE_LIMITED"
	NotPermitted      Code = "NOT_PERMITTED"
	InsufficientFunds Code = "INSUFFICIENT_FUNDS"
	Conflict          Code = "CONFLICT"
	NoLicence         Code = "NO_ACTIVE_LICENCE"
	RuleNotConfirmed  Code = "RULE_NOT_CONFIRMED"
	Timeout           Code = "TIMEOUT"
	Unavailable       Code = "UNAVAILABLE"
	// The engine's trading-state refusals.
	PhaseRefused      Code = "PHASE_REFUSED"
	MarketHalted      Code = "MARKET_HALTED"
	WouldTake         Code = "WOULD_TAKE"
	InvalidTransition Code = "INVALID_TRANSITION"
)

// All lists every code, for documentation checks.
func All() []Code {
	return []Code{Internal, MalformedJSON, UnknownMethod, InvalidParameter, InvalidQuantity, InvalidPrice, TooPrecise,
		UnknownSymbol, UnknownAsset, UnknownAccount, UnknownOrder, UnknownMiner, NotLoggedOn, Unauthenticated, BadSignature, StaleRequest, Replayed, RateLimited, NotPermitted,
		InsufficientFunds, Conflict, NoLicence, RuleNotConfirmed, Timeout, Unavailable,
		PhaseRefused, MarketHalted, WouldTake, InvalidTransition}
}

// Error is an application error: a code and a human message. It is also the
// error object every edge sends: {"code": "...", "message": "..."}.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// New returns an application error with a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain; Internal if none.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the user-facing message: the application message, or
// "internal error" for anything else, so internals never leak to clients.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus maps a code to the HTTP status (and websocket response status)
// the edges answer with.
func HTTPStatus(c Code) int {
	switch c {
	case MalformedJSON, UnknownMethod, InvalidParameter, InvalidQuantity, InvalidPrice, TooPrecise,
		UnknownSymbol, UnknownAsset, InsufficientFunds, StaleRequest:
		return 400
	case NotLoggedOn, Unauthenticated, BadSignature:
		return 401
	case NotPermitted:
		return 403
	case UnknownAccount, UnknownOrder, UnknownMiner:
		return 404
	case Conflict, Replayed, PhaseRefused, MarketHalted, WouldTake, InvalidTransition:
		return 409
	case NoLicence, RuleNotConfirmed:
		return 422
	case RateLimited:
		return 429
	case Unavailable:
		return 503
	case Timeout:
		return 504
	default:
		return 500
	}
}
