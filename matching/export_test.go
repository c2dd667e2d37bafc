package matching

import "encoding/json"

// SnapshotSizeHint is the buffer size AppendBinary starts from for s.
func SnapshotSizeHint(s *Snapshot) int {
	symbols, _ := json.Marshal(s.Symbols)
	return s.sizeHint(len(symbols))
}
