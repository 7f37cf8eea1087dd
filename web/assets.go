package web

import (
	"embed"
	"net/http"
)

//go:embed templates/*.tmpl static/admin.css static/clients.js
var assets embed.FS

var adminCSS = mustRead("static/admin.css")

var clientsJS = mustRead("static/clients.js")

func mustRead(name string) []byte {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return b
}

// serveCSS serves the console's stylesheet.
func serveCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(adminCSS)
}

// serveClientsJS serves the clients page's copy buttons.
func serveClientsJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(clientsJS)
}
