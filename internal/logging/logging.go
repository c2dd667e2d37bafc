// Package logging builds Satu's zap loggers: JSON in production, console in
// development, and an audit logger that is never sampled.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns the service logger and the audit logger. format is "json" or
// "console". The audit logger has sampling off: every audit event is written.
func New(format, level string) (log, audit *zap.Logger, err error) {
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig() // samples repeated messages
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		cfg.Development = false
	default:
		return nil, nil, fmt.Errorf("log format %q: want json or console", format)
	}
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, nil, fmt.Errorf("log level: %w", err)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	if log, err = cfg.Build(); err != nil {
		return nil, nil, err
	}
	cfg.Sampling = nil
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	if audit, err = cfg.Build(); err != nil {
		return nil, nil, err
	}
	return log, audit.Named("audit"), nil
}
