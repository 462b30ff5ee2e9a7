package config

import (
	"reflect"
	"slices"
	"strings"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// redactedText replaces a secret value.
const redactedText = "<redacted>"

// Redacted returns a deep copy of s that is safe to show (/config_dump,
// logs). Every field tagged `sluice:"secret"` is replaced by "<redacted>":
// a string, or each value of a map (empty values stay empty). Plugin
// configuration is free-form, so inside defaultConfig, pluginConfig,
// matchRules[].config and vmConfig.env the string values under keys that
// name a secret (token, secret, password, apiKey, credential,
// authorization, privateKey, accessKey, cookie) are redacted too.
// s is not modified. Hash stays the hash of the real configuration.
func (s *Snapshot) Redacted() *Snapshot {
	if s == nil {
		return nil
	}
	out := &Snapshot{
		Gateway:     cloneRedacted(s.Gateway),
		Clusters:    cloneRedacted(s.Clusters),
		Routes:      cloneRedacted(s.Routes),
		WasmPlugins: cloneRedacted(s.WasmPlugins),
		Files:       slices.Clone(s.Files),
		Hash:        s.Hash,
		Warnings:    cloneRedacted(s.Warnings),
	}
	for _, p := range out.WasmPlugins {
		if p == nil || p.Spec.VMConfig == nil {
			continue
		}
		for i, e := range p.Spec.VMConfig.Env {
			if e.ValueFrom != v1alpha1.EnvHost && e.Value != "" && secretKey(e.Name) {
				p.Spec.VMConfig.Env[i].Value = redactedText
			}
		}
	}
	return out
}

// cloneRedacted deep-copies v, redacting secrets.
func cloneRedacted[T any](v T) T {
	return cloneValue(reflect.ValueOf(&v).Elem(), false).Interface().(T)
}

// cloneValue returns a deep copy of v; secret replaces every non-empty
// string inside it.
func cloneValue(v reflect.Value, secret bool) reflect.Value {
	t := v.Type()
	out := reflect.New(t).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(t.Elem())
			p.Elem().Set(cloneValue(v.Elem(), secret))
			out.Set(p)
		}
	case reflect.Struct:
		out.Set(v) // unexported fields, if any, are copied as they are
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			out.Field(i).Set(cloneValue(v.Field(i), secret || f.Tag.Get("sluice") == "secret"))
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(t, v.Len(), v.Len())
			for i := range v.Len() {
				s.Index(i).Set(cloneValue(v.Index(i), secret))
			}
			out.Set(s)
		}
	case reflect.Map:
		if !v.IsNil() {
			m := reflect.MakeMapWithSize(t, v.Len())
			freeForm := t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.Interface
			iter := v.MapRange()
			for iter.Next() {
				s := secret || (freeForm && secretKey(iter.Key().String()))
				m.SetMapIndex(iter.Key(), cloneValue(iter.Value(), s))
			}
			out.Set(m)
		}
	case reflect.Interface:
		if !v.IsNil() {
			out.Set(cloneValue(v.Elem(), secret))
		}
	case reflect.String:
		if secret && v.Len() > 0 {
			out.SetString(redactedText)
		} else {
			out.Set(v)
		}
	default:
		out.Set(v)
	}
	return out
}

// secretWords are the key fragments that mark a plugin setting as secret.
var secretWords = []string{
	"token", "secret", "password", "passwd", "apikey", "credential",
	"authorization", "privatekey", "accesskey", "cookie",
}

// secretKey reports whether a configuration key names a secret:
// "apiTokens", "api_key", "X-Api-Key", "OPENAI_API_KEY", "password".
func secretKey(k string) bool {
	k = strings.ToLower(k)
	k = strings.NewReplacer("-", "", "_", "", ".", "", " ", "").Replace(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}
