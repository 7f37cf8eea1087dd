package idp

import "testing"

func TestHashToken(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		// FIPS 180-2 test vectors, base64url without padding.
		{value: "", want: "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
		{value: "abc", want: "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"},
	}
	for _, tt := range tests {
		if got := hashToken(tt.value); got != tt.want {
			t.Errorf("hashToken(%q) = %q, want %q", tt.value, got, tt.want)
		}
	}
}
