# The connector's build, test and run targets. `make test` starts whatever
# the tests need (a throwaway PostgreSQL; NATS runs inside the tests).
SERVICES := fetcher normalizer writer webhook zoomctl zoomsim
MODULE   := github.com/claritysecurity/zoom-connector
GO       ?= go

.PHONY: build test bench proto lint demo tidy clean

build:
	@mkdir -p bin
	@for s in $(SERVICES); do \
		$(GO) build -o bin/$$s $(MODULE)/services/$$s || exit 1; \
	done

test:
	scripts/test.sh

bench: build
	scripts/bench.sh

demo: build
	bin/zoomctl dev $(if $(PLAN),--plan $(PLAN))

# Regenerates pkg/pb from proto/ (needs protoc and protoc-gen-go; the
# generated code is committed, so only changes to proto/ need this).
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 1; }
	@command -v protoc-gen-go >/dev/null || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	protoc -I proto --go_out=pkg/pb --go_opt=paths=source_relative \
		--plugin=protoc-gen-go=$$(command -v protoc-gen-go || echo $$($(GO) env GOPATH)/bin/protoc-gen-go) proto/*.proto

lint:
	@test -z "$$(gofmt -l pkg services)" || { gofmt -l pkg services; exit 1; }
	@for m in $$($(GO) list -m -f '{{.Dir}}'); do (cd $$m && $(GO) vet ./...) || exit 1; done

tidy:
	@for m in pkg $(addprefix services/,$(SERVICES)); do (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; done

clean:
	rm -rf bin
