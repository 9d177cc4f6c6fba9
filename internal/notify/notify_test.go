package notify

import (
	"maps"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"ready", "READY=1", map[string]string{"READY": "1"}, ""},
		{"trailing newline", "READY=1\nSTATUS=hi\n", map[string]string{"READY": "1", "STATUS": "hi"}, ""},
		{"empty lines skipped", "\nREADY=1\n\nWATCHDOG=1\n\n", map[string]string{"READY": "1", "WATCHDOG": "1"}, ""},
		{"empty value", "STATUS=", map[string]string{"STATUS": ""}, ""},
		{"value with equals", "STATUS=a=b c", map[string]string{"STATUS": "a=b c"}, ""},
		{"last wins", "STATUS=a\nSTATUS=b", map[string]string{"STATUS": "b"}, ""},
		{"utf8 value", "STATUS=héllo ✓", map[string]string{"STATUS": "héllo ✓"}, ""},
		{"max size", "STATUS=" + strings.Repeat("x", MaxDatagram-len("STATUS=")), map[string]string{"STATUS": strings.Repeat("x", MaxDatagram-len("STATUS="))}, ""},
		{"empty", "", nil, "empty message"},
		{"only newlines", "\n\n", nil, "empty message"},
		{"no equals", "READY", nil, "line 1: missing '='"},
		{"no equals later", "READY=1\ngarbage", nil, "line 2: missing '='"},
		{"empty key", "=1", nil, "line 1: empty key"},
		{"invalid utf8", "STATUS=\xff\xfe", nil, "not valid utf-8"},
		{"nul byte", "READY=1\x00", nil, "nul byte"},
		{"too big", "STATUS=" + strings.Repeat("x", MaxDatagram), nil, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewMessage(t *testing.T) {
	m := newMessage(map[string]string{"READY": "1", "STOPPING": "1", "WATCHDOG": "1", "STATUS": "up"}, 7, 8, 9)
	if !m.Ready || !m.Stopping || !m.Watchdog || m.Status != "up" || m.PID != 7 || m.UID != 8 || m.GID != 9 {
		t.Errorf("newMessage = %+v", m)
	}
	m = newMessage(map[string]string{"READY": "0", "WATCHDOG": "trigger"}, 1, 0, 0)
	if m.Ready || m.Stopping || m.Watchdog || m.Status != "" {
		t.Errorf("newMessage = %+v, want no flags", m)
	}
}
