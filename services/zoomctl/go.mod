module github.com/claritysecurity/zoom-connector/services/zoomctl

go 1.26.0

require (
	github.com/chromedp/chromedp v0.24.0
	github.com/claritysecurity/zoom-connector/pkg v0.0.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
)

replace github.com/claritysecurity/zoom-connector/pkg => ../../pkg
