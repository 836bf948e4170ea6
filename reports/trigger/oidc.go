package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/api/idtoken"
)

// TokenValidator validates a Google-signed ID token's signature, expiry and
// audience. *idtoken.Validator is one.
type TokenValidator interface {
	Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error)
}

var _ TokenValidator = (*idtoken.Validator)(nil)

// OIDCConfig is what a caller's ID token must carry.
type OIDCConfig struct {
	// Audiences are the aud values accepted: the Cloud Run service's URLs.
	// A service has two, https://SERVICE-PROJECTNUMBER.REGION.run.app
	// (deterministic) and https://SERVICE-HASH-REGIONCODE.a.run.app, and a
	// Scheduler job may have been created with either, so list both (or
	// whatever audience the Scheduler job sets). A trailing slash is ignored.
	Audiences []string
	// AllowedEmails are the service accounts allowed to call (the Scheduler
	// invoker account, and perhaps an operator's).
	AllowedEmails []string
}

// googleIssuers are the iss values of Google-signed ID tokens.
var googleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// signatureRemoved is what Cloud Run puts in place of a token's signature
// when its own invoker IAM check consumed the token.
const signatureRemoved = "SIGNATURE_REMOVED_BY_GOOGLE"

const maxTokenBytes = 8 << 10

// RequireOIDC returns middleware that lets a request through only with an
// "Authorization: Bearer <ID token>" whose signature verifies against Google's
// keys (through v), whose audience is one of cfg.Audiences, issuer Google, and whose
// verified email is one of cfg.AllowedEmails. A missing or invalid token is
// 401, a valid token of another account 403. The verified email is available
// to handlers through Caller.
func RequireOIDC(v TokenValidator, cfg OIDCConfig, logger *slog.Logger) (func(http.Handler) http.Handler, error) {
	if v == nil {
		return nil, errors.New("oidc: token validator is required")
	}
	var audiences []string
	for _, a := range cfg.Audiences {
		a = normalizeAudience(a)
		if a == "" {
			continue
		}
		if u, err := url.Parse(a); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("oidc: audience %q is not an https URL", a)
		}
		audiences = append(audiences, a)
	}
	if len(audiences) == 0 {
		return nil, errors.New("oidc: at least one audience is required")
	}
	if len(cfg.AllowedEmails) == 0 {
		return nil, errors.New("oidc: at least one allowed email is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	allowed := make([]string, len(cfg.AllowedEmails))
	for i, e := range cfg.AllowedEmails {
		allowed[i] = strings.ToLower(strings.TrimSpace(e))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			email, code, err := verifyRequest(r, v, audiences, allowed)
			if err != nil {
				logger.WarnContext(r.Context(), "request refused", "reason", err.Error(),
					"path", r.URL.Path, "status", code)
				if code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="nightly-trigger"`)
				}
				writeError(w, code, http.StatusText(code))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, email)))
		})
	}, nil
}

// verifyRequest returns the caller's email, or the status to answer and why.
func verifyRequest(r *http.Request, v TokenValidator, audiences, allowed []string) (string, int, error) {
	headers := r.Header.Values("Authorization")
	switch {
	case len(headers) == 0:
		return "", http.StatusUnauthorized, errors.New("no Authorization header")
	case len(headers) > 1:
		return "", http.StatusUnauthorized, errors.New("more than one Authorization header")
	}
	scheme, token, ok := strings.Cut(headers[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", http.StatusUnauthorized, errors.New("Authorization is not a Bearer token")
	}
	if len(token) > maxTokenBytes {
		return "", http.StatusUnauthorized, fmt.Errorf("token longer than %d bytes", maxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", http.StatusUnauthorized, errors.New("token is not a JWT")
	}
	if parts[2] == signatureRemoved {
		return "", http.StatusUnauthorized, errors.New("token signature was removed by Cloud Run's invoker IAM check; " +
			"deploy with --no-invoker-iam-check to verify tokens in the service")
	}
	// Signature and expiry here; the audience against the list below (an
	// empty audience makes the validator skip only that check).
	p, err := v.Validate(r.Context(), token, "")
	if err != nil {
		return "", http.StatusUnauthorized, fmt.Errorf("validate token: %w", err)
	}
	if !slices.Contains(audiences, normalizeAudience(p.Audience)) {
		return "", http.StatusUnauthorized, fmt.Errorf("audience %q is not one of %v", p.Audience, audiences)
	}
	if !slices.Contains(googleIssuers, p.Issuer) {
		return "", http.StatusUnauthorized, fmt.Errorf("issuer %q is not Google", p.Issuer)
	}
	email, _ := p.Claims["email"].(string)
	verified, _ := p.Claims["email_verified"].(bool)
	if email == "" || !verified {
		return "", http.StatusForbidden, errors.New("token has no verified email")
	}
	if !slices.Contains(allowed, strings.ToLower(email)) {
		return "", http.StatusForbidden, fmt.Errorf("caller %s is not allowed", email)
	}
	return email, 0, nil
}

func normalizeAudience(a string) string {
	return strings.TrimSuffix(strings.TrimSpace(a), "/")
}
