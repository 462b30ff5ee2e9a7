module github.com/sluicegw/sluice/test/plugins

go 1.26.8

require (
	github.com/higress-group/proxy-wasm-go-sdk v0.0.0-20251103120604-77e9cce339d2
	github.com/higress-group/wasm-go v1.0.3-0.20251011083635-792cb1547bac
	github.com/tidwall/gjson v1.18.0
	github.com/tidwall/resp v0.1.1
)

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.1 // indirect
	github.com/tidwall/sjson v1.2.5 // indirect
)
