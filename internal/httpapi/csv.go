package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// writeCSV writes a slice of structs as CSV: one column per exported field,
// named by its JSON name (embedded structs' fields inline), strings and
// numbers as they are, lists of strings joined with ";", anything else as
// its JSON — so a list exports with the same names and values its JSON has.
func writeCSV(w io.Writer, list any) error {
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice {
		return fmt.Errorf("csv: %T is not a list", list)
	}
	cols := csvColumns(v.Type().Elem(), nil)
	cw := csv.NewWriter(w)
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.name
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	row := make([]string, len(cols))
	for i := 0; i < v.Len(); i++ {
		e := reflect.Indirect(v.Index(i))
		for j, c := range cols {
			cell, err := csvCell(e.FieldByIndex(c.index))
			if err != nil {
				return err
			}
			row[j] = cell
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

type csvColumn struct {
	name  string
	index []int
}

func csvColumns(t reflect.Type, prefix []int) []csvColumn {
	var cols []csvColumn
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		index := append(append([]int(nil), prefix...), i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			cols = append(cols, csvColumns(f.Type, index)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		cols = append(cols, csvColumn{name: name, index: index})
	}
	return cols
}

func csvCell(v reflect.Value) (string, error) {
	if t, ok := v.Interface().(time.Time); ok {
		if t.IsZero() {
			return "", nil
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint64:
		return fmt.Sprint(v.Interface()), nil
	case reflect.Pointer:
		if v.IsNil() {
			return "", nil
		}
		return csvCell(v.Elem())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			return strings.Join(v.Interface().([]string), ";"), nil
		}
	}
	b, err := json.Marshal(v.Interface())
	return string(b), err
}
