module github.com/claritysecurity/zoom-connector/services/zoomsim

go 1.26.0

require (
	github.com/claritysecurity/zoom-connector/pkg v0.0.0
	github.com/rs/zerolog v1.35.1
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace github.com/claritysecurity/zoom-connector/pkg => ../../pkg
