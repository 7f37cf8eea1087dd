package fake

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// callbackVectors are DingTalk's official callback crypto vectors (§7.4).
var callbackVectors = []struct {
	name, token, aesKey, ownerKey, timestamp, nonce, signature, encrypt, plaintext string
}{
	{
		name: "check_create_suite_url", token: "123456", aesKey: "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij",
		ownerKey: "suite4xxxxxxxxxxxxxxx", timestamp: "1445827045067", nonce: "nEXhMP4r",
		signature: "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0",
		encrypt:   "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==",
		plaintext: `{"EventType":"check_create_suite_url","Random":"LPIdSnlF","TestSuiteKey":"suite4xxxxxxxxxxxxxxx"}`,
	},
	{
		name: "success reply", token: "tokenxxxx", aesKey: "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus",
		ownerKey: "dingxxxxxx", timestamp: "1605695694141", nonce: "WelUQl6bCqcBa2fM",
		signature: "f36f4ba5337d426c7d4bca0dbcb06b3ddc1388fc",
		encrypt:   "X1VSe9cTJUMZu60d3kyLYTrBq5578ZRJtteU94wG0Q4Uk6E/wQYeJRIC0/UFW5Wkya1Ihz9oXAdLlyC9TRaqsQ==",
		plaintext: "success",
	},
	{
		name: "success reply, seconds timestamp", token: "123456", aesKey: "1234567890123456789012345678901234567890123",
		ownerKey: "dingsnotzck6pm5veliw", timestamp: "1614767836", nonce: "A7Co0cJLMzIDtMMI",
		signature: "9a95a004dd16f5c307e849b994173f76aa26e5eb",
		encrypt:   "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA==",
		plaintext: "success",
	},
}

func TestCallbackCipherVectors(t *testing.T) {
	for _, v := range callbackVectors {
		t.Run(v.name, func(t *testing.T) {
			c, err := newCallbackCipher(v.token, v.aesKey, v.ownerKey)
			if err != nil {
				t.Fatalf("newCallbackCipher: %v", err)
			}
			if got := c.signature(v.timestamp, v.nonce, v.encrypt); got != v.signature {
				t.Errorf("signature = %s, want %s", got, v.signature)
			}
			got, err := c.decrypt(v.encrypt)
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			if got != v.plaintext {
				t.Errorf("decrypt = %q, want %q", got, v.plaintext)
			}

			other, _ := newCallbackCipher(v.token, v.aesKey, "someone-else")
			if _, err := other.decrypt(v.encrypt); !errors.Is(err, errCallbackDecrypt) {
				t.Errorf("decrypt with another owner key: err = %v, want errCallbackDecrypt", err)
			}
		})
	}
}

func TestCallbackCipherRoundTrip(t *testing.T) {
	c, err := newCallbackCipher("demotoken1", "dingbridgeDemoCallbackAesKeyForCorpNumber01", DemoAppKey)
	if err != nil {
		t.Fatalf("newCallbackCipher: %v", err)
	}
	for _, msg := range []string{"", "success", `{"EventType":"user_leave_org","UserId":["张三"]}`, strings.Repeat("x", 100)} {
		enc, err := c.encrypt(msg)
		if err != nil {
			t.Fatalf("encrypt(%q): %v", msg, err)
		}
		raw, _ := base64.StdEncoding.DecodeString(enc)
		if len(raw)%32 != 0 {
			t.Errorf("encrypt(%q): %d bytes, want a multiple of 32", msg, len(raw))
		}
		got, err := c.decrypt(enc)
		if err != nil || got != msg {
			t.Errorf("decrypt(encrypt(%q)) = %q, %v", msg, got, err)
		}
	}
}

func TestCallbackCipherRejects(t *testing.T) {
	if _, err := newCallbackCipher("t", "short", "o"); err == nil {
		t.Error("newCallbackCipher with a 5-character key: err = nil, want an error")
	}
	c, _ := newCallbackCipher("t", "dingbridgeDemoCallbackAesKeyForCorpNumber01", "o")
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 15)), base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := c.decrypt(bad); err == nil {
			t.Errorf("decrypt(%q): err = nil, want an error", bad)
		}
	}
}

func TestSNSSignatureVector(t *testing.T) {
	const want = "HCbG3xNE3vzhO+u7qCUL1jS5hsu2n5r2cFhnTrtyDAE="
	if got := snsSignature("testappSecret", "1546084445901"); got != want {
		t.Errorf("snsSignature = %s, want %s", got, want)
	}
}
