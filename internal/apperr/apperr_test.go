package apperr_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/satu-exchange/satu/internal/apperr"
)

func TestCodeAndMessage(t *testing.T) {
	err := fmt.Errorf("placing: %w", apperr.New(apperr.UnknownSymbol, "unknown symbol %q", "X"))
	if apperr.CodeOf(err) != apperr.UnknownSymbol || apperr.MessageOf(err) != `unknown symbol "X"` {
		t.Fatalf("got %s / %s", apperr.CodeOf(err), apperr.MessageOf(err))
	}
	plain := errors.New("connection refused to 10.0.0.1")
	if apperr.CodeOf(plain) != apperr.Internal || apperr.MessageOf(plain) != "internal error" {
		t.Fatal("internal details leak")
	}
	if apperr.HTTPStatus(apperr.UnknownMiner) != 404 || apperr.HTTPStatus(apperr.Internal) != 500 ||
		apperr.HTTPStatus(apperr.TooPrecise) != 400 {
		t.Fatal("status mapping")
	}
}

func TestEveryCodeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range apperr.All() {
		row := fmt.Sprintf("| `%s` | %d |", c, apperr.HTTPStatus(c))
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/errors.md lacks the row %q", row)
		}
	}
}
