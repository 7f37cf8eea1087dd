module github.com/dingbridge/dingbridge

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/jackc/pgx/v5 v5.12.0
	gopkg.in/yaml.v3 v3.0.1
)

// The project's fixed choices for the OpenID Connect provider, pinned now so
// every later change builds on the same versions. zitadel/oidc must stay at
// v3.49.2 (the newest the module proxy serves). No package imports these yet,
// so "go mod tidy" would drop them: keep this block until the provider lands.
require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	github.com/gorilla/sessions v1.4.0 // indirect
	github.com/zitadel/oidc/v3 v3.49.2 // indirect
)

require (
	github.com/gorilla/securecookie v1.1.2 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
