package httpapi

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/satu-exchange/satu/compliance"
	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/compliance/proof"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// TestOpenAPISchemasMatchGoTypes holds each component schema against the
// Go type the handlers decode or encode: the same JSON field names, a field
// required exactly when it is not omitempty, the same JSON types, nested
// objects alike, no other properties. Answers the handlers build as maps
// (Custody, CreatedKey, RevokedKey, Balances, OpenOrders, SettlementStatus,
// Status, Readiness, the lists) and OpenOrder (a subset of
// wsapi.OrderResult) have no type to hold them against: cmd/satu's
// TestOpenAPIResponses checks them against the real service's answers.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]any{
		"Error": apperr.Error{}, "SymbolInfo": wsapi.SymbolInfo{}, "Depth": wsapi.DepthResult{},
		"AccountRequest": accountRequest{}, "Account": accountRequest{}, "CustodyRequest": depositRequest{},
		"PhaseRequest": phaseRequest{}, "MarketState": marketState{}, "KeyRequest": keyRequest{}, "KeyInfo": accesspg.KeyInfo{},
		"Balance": postgres.Balance{}, "AccountFill": postgres.AccountFill{}, "FillPage": postgres.FillPage{},
		"AccountPosting": postgres.AccountPosting{}, "PostingPage": postgres.PostingPage{}, "StatementLine": postgres.StatementLine{},
		"StatementAsset": postgres.StatementAsset{}, "Statement": postgres.Statement{},
		"Miner": compliance.Miner{}, "StatusChange": compliance.StatusChange{}, "Licence": compliancepg.LicenceView{},
		"LicenceRequest": licenceRequest{}, "LicenceChangeRequest": licenceChangeRequest{}, "DataCentre": compliance.DataCentre{},
		"PoolRequest": poolRequest{}, "Pool": compliance.Pool{}, "Equipment": compliance.Equipment{}, "Quota": quotaRequest{},
		"Consumption": consumptionRequest{}, "PoolStatement": poolStatementRequest{}, "FeeRequest": feeRequest{},
		"FeeLine": compliancepg.FeeLine{}, "FeeAssessment": compliancepg.FeeAssessment{}, "EnergyMonth": compliancepg.EnergyMonth{},
		"ReportRequest": reportRequest{}, "Obligation": compliance.ObligationView{}, "ReportVersion": compliancepg.ReportVersionView{},
		"Report": compliancepg.ReportView{}, "Computation": compliancepg.Computation{}, "CountedFill": compliancepg.CountedFill{},
		"ExcludedFill": compliancepg.ExcludedFill{}, "Violation": compliancepg.Violation{},
		"ObligationDetail": compliancepg.ObligationDetail{}, "PermissionChange": compliancepg.PermissionChange{},
		"SweepResult": SweepResult{}, "Summary": compliancepg.Summary{}, "AuditEntry": compliancepg.AuditEntry{},
		"Mark": compliance.Mark{}, "RuleSet": compliance.RuleSet{}, "Checkpoint": compliancepg.StoredCheckpoint{},
		"Certificate": proof.Certificate{},
	}
	for name, v := range types {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Errorf("components.schemas has no %s", name)
			continue
		}
		matchSchema(t, name, ref.Value, reflect.TypeOf(v))
	}
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	rawType   = reflect.TypeFor[json.RawMessage]()
	textType  = reflect.TypeFor[encoding.TextMarshaler]()
	jsonMType = reflect.TypeFor[json.Marshaler]()
)

// matchSchema checks that values of type typ encode as schema describes.
func matchSchema(t *testing.T, at string, schema *openapi3.Schema, typ reflect.Type) {
	t.Helper()
	if len(schema.AllOf) == 1 && schema.Type == nil {
		schema = schema.AllOf[0].Value
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	is := func(want string) {
		t.Helper()
		if !schema.Type.Is(want) {
			t.Errorf("%s: schema type %v; the Go type %s encodes as %s", at, schema.Type, typ, want)
		}
	}
	switch {
	case typ == rawType:
		return // any JSON
	case typ == timeType:
		is("string")
		if schema.Format != "date-time" {
			t.Errorf("%s: a time.Time encodes as an RFC 3339 date-time, not format %q", at, schema.Format)
		}
		return
	case typ.Implements(jsonMType) || reflect.PointerTo(typ).Implements(jsonMType):
		t.Errorf("%s: %s has its own MarshalJSON: describe it by hand and leave it out of this test", at, typ)
		return
	case typ.Implements(textType):
		is("string")
		return
	}
	switch typ.Kind() {
	case reflect.String:
		is("string")
	case reflect.Bool:
		is("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64:
		is("integer")
	case reflect.Slice, reflect.Array:
		is("array")
		if schema.Items != nil {
			matchSchema(t, at+"[]", schema.Items.Value, typ.Elem())
		}
	case reflect.Map:
		is("object")
		if schema.AdditionalProperties.Schema == nil {
			t.Errorf("%s: a map needs additionalProperties with the value schema", at)
		} else {
			matchSchema(t, at+"{}", schema.AdditionalProperties.Schema.Value, typ.Elem())
		}
	case reflect.Struct:
		is("object")
		fields := map[string]reflect.Type{}
		var required []string
		jsonFields(typ, fields, &required)
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		var names []string
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		if !slices.Equal(props, names) {
			t.Errorf("%s: properties %v; %s encodes %v", at, props, typ, names)
		}
		sort.Strings(required)
		req := slices.Clone(schema.Required)
		sort.Strings(req)
		if !slices.Equal(req, required) {
			t.Errorf("%s: required %v; %s always encodes %v", at, req, typ, required)
		}
		if schema.AdditionalProperties.Has == nil || *schema.AdditionalProperties.Has {
			t.Errorf("%s: additionalProperties must be false: %s encodes no others", at, typ)
		}
		for _, n := range names {
			if p := schema.Properties[n]; p != nil {
				matchSchema(t, at+"."+n, p.Value, fields[n])
			}
		}
	case reflect.Interface:
		// any: nothing to check
	default:
		t.Errorf("%s: unexpected Go kind %s", at, typ.Kind())
	}
}

// jsonFields collects the JSON names of typ's fields as encoding/json
// encodes them (embedded structs inline) and those always present.
func jsonFields(typ reflect.Type, fields map[string]reflect.Type, required *[]string) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			jsonFields(f.Type, fields, required)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
		omit := false
		for _, o := range strings.Split(opts, ",") {
			omit = omit || o == "omitempty" || o == "omitzero"
		}
		if !omit {
			*required = append(*required, name)
		}
	}
}
