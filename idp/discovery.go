package idp

import (
	"encoding/json"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// discoveryDocument is OpenID Connect Discovery 1.0 metadata plus the
// RFC 9207 flag the library's struct lacks. It advertises exactly what is
// implemented: code flow only, S256 only, no request objects, no "none".
type discoveryDocument struct {
	*oidc.DiscoveryConfiguration
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported                  bool `json:"request_parameter_supported"`
	ClaimsParameterSupported                   bool `json:"claims_parameter_supported"`
}

// supportedScopes are the scopes any client may be configured with.
var supportedScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone,
	scopeGroups, oidc.ScopeOfflineAccess, scopeDingTalk}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	algs := []string{}
	for _, a := range p.storage.keys.Algorithms(r.Context()) {
		algs = append(algs, string(a))
	}
	secretMethods := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	doc := discoveryDocument{
		DiscoveryConfiguration: &oidc.DiscoveryConfiguration{
			Issuer:                                    p.issuer,
			AuthorizationEndpoint:                     p.issuer + pathAuthorize,
			TokenEndpoint:                             p.issuer + pathToken,
			IntrospectionEndpoint:                     p.issuer + pathIntrospect,
			UserinfoEndpoint:                          p.issuer + pathUserinfo,
			RevocationEndpoint:                        p.issuer + pathRevoke,
			EndSessionEndpoint:                        p.issuer + pathEndSession,
			JwksURI:                                   p.issuer + pathKeys,
			ScopesSupported:                           supportedScopes,
			ResponseTypesSupported:                    []string{string(oidc.ResponseTypeCode)},
			ResponseModesSupported:                    []string{string(oidc.ResponseModeQuery)},
			GrantTypesSupported:                       []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
			SubjectTypesSupported:                     []string{"public"},
			IDTokenSigningAlgValuesSupported:          algs,
			TokenEndpointAuthMethodsSupported:         append(secretMethods, oidc.AuthMethodNone),
			RevocationEndpointAuthMethodsSupported:    append(secretMethods, oidc.AuthMethodNone),
			IntrospectionEndpointAuthMethodsSupported: secretMethods,
			ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp",
				"at_hash", "c_hash", "name", "preferred_username", "email", "email_verified", "phone_number",
				"groups", "dingtalk_corp_id", "dingtalk_user_id", "dingtalk_union_id"},
			CodeChallengeMethodsSupported: []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256},
		},
		AuthorizationResponseISSParameterSupported: true,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*") // public metadata (RFC-15)
	_ = json.NewEncoder(w).Encode(doc)
}
