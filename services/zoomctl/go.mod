module github.com/claritysecurity/zoom-connector/services/zoomctl

go 1.26.0

require github.com/claritysecurity/zoom-connector/pkg v0.0.0

replace github.com/claritysecurity/zoom-connector/pkg => ../../pkg
