package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		write      func(w http.ResponseWriter)
		wantStatus int
		wantRetry  string
		wantBody   map[string]any
	}{
		{
			name:       "default title",
			write:      func(w http.ResponseWriter) { Error(w, http.StatusNotFound, "no such contact") },
			wantStatus: 404,
			wantBody:   map[string]any{"title": "Not Found", "status": 404.0, "detail": "no such contact"},
		},
		{
			name: "extensions flattened",
			write: func(w http.ResponseWriter) {
				Write(w, Details{Status: 412, Title: "Precondition Failed", Type: "https://convergo.dev/problems/version",
					Extensions: map[string]any{"current_version": 7}})
			},
			wantStatus: 412,
			wantBody: map[string]any{"title": "Precondition Failed", "status": 412.0,
				"type": "https://convergo.dev/problems/version", "current_version": 7.0},
		},
		{
			name:       "retry after rounds up",
			write:      func(w http.ResponseWriter) { RetryAfter(w, 429, "slow down", 1500*time.Millisecond) },
			wantStatus: 429,
			wantRetry:  "2",
			wantBody:   map[string]any{"title": "Too Many Requests", "status": 429.0, "detail": "slow down"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.write(rec)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != ContentType {
				t.Fatalf("content-type = %q, want %q", got, ContentType)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Fatalf("retry-after = %q, want %q", got, tt.wantRetry)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if diff := cmp.Diff(tt.wantBody, got); diff != "" {
				t.Fatalf("body (-want +got):\n%s", diff)
			}
		})
	}
}
