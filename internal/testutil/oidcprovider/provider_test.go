package oidcprovider_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/evidenced/evidenced/internal/testutil/oidcprovider"
)

// TestSignInGivesTheAccountsGroups walks the authorization-code flow with
// PKCE over plain HTTP (the form filled in by hand) and checks that the ID
// token verifies against the provider's JWKS and carries the groups of the
// account whose name was typed, and nothing for a stranger.
func TestSignInGivesTheAccountsGroups(t *testing.T) {
	p := oidcprovider.Start(t, map[string][]string{"Ann Custodian": {"evidence-custodians"}})
	ctx := context.Background()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		login string
		want  []string
	}{{"Ann Custodian", []string{"evidence-custodians"}}, {"Stranger", nil}} {
		cfg := p.Config()
		oc := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: op.Endpoint(),
			RedirectURL: "http://127.0.0.1:1/cb", Scopes: []string{oidc.ScopeOpenID, "profile", "groups"}}
		oc.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		verifier := oauth2.GenerateVerifier()
		authURL := oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		form, err := c.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(form.Body)
		form.Body.Close()
		if !strings.Contains(string(body), `id="username"`) {
			t.Fatalf("authorize without a name = %d %q, want the sign-in form", form.StatusCode, body)
		}
		resp, err := c.Get(authURL + "&login_name=" + url.QueryEscape(tc.login))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
			t.Fatalf("authorize with a name = %d Location %q, want a redirect with code and state", resp.StatusCode, resp.Header.Get("Location"))
		}
		tok, err := oc.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("token exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := op.Verifier(&oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		var cl struct {
			Name   string   `json:"name"`
			Groups []string `json:"groups"`
		}
		if err := idt.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		if cl.Name != tc.login || strings.Join(cl.Groups, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: claims name %q groups %v, want %q %v", tc.login, cl.Name, cl.Groups, tc.login, tc.want)
		}
	}
}
