package loopguard

import "fmt"

// CheckCounts rejects a module whose sections announce more entries than
// they have bytes (every entry takes at least one byte). wazero v1.12
// allocates a section's entries by the announced count before decoding
// them, so such a module — a few bytes claiming billions of entries — would
// make the host run out of memory and die instead of rejecting it. A module
// whose sections cannot be split is left to wazero, which reports it.
func CheckCounts(wasm []byte) error {
	sections, err := split(wasm)
	if err != nil {
		return nil
	}
	for _, s := range sections {
		if s.id == idCustom || s.id == idStart || s.id == idDataCount {
			continue // no leading entry count
		}
		r := reader{buf: s.body}
		n, err := r.u32()
		if err != nil {
			continue // wazero reports the malformed count
		}
		if uint64(n) > uint64(len(s.body)) {
			return fmt.Errorf("malformed module: the %s section announces %d entries in %d bytes", sectionName[s.id], n, len(s.body))
		}
	}
	return nil
}
