# Satu — the two commands are `make run` and `make test`.
SHELL := /bin/bash
SERVICES := bash deploy/local/services.sh
GO ?= go

.PHONY: run test stop services status demo build vet

## run: start private PostgreSQL and Redis under ./.satu/, migrate, serve on :8080 with the demo market
run: services
	@$(GO) build -o .satu/bin/satu ./cmd/satu
	@[ -f .satu/log.key ] || .satu/bin/satu logkey -out .satu
	@eval "$$($(SERVICES) env)" && exec .satu/bin/satu serve --demo --keys-dir .satu/keys --log-key-file .satu/log.key

## test: install PostgreSQL and Redis if missing, then vet and the whole suite against real services
test:
	@$(SERVICES) ensure
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

## stop: stop the private PostgreSQL and Redis
stop:
	@$(SERVICES) stop

services:
	@$(SERVICES) start

status:
	@$(SERVICES) status

## demo: run the bounded demo once and print the compliance table
demo: services
	@eval "$$($(SERVICES) env)" && $(GO) run ./cmd/satu demo

build:
	$(GO) build -o bin/satu ./cmd/satu
