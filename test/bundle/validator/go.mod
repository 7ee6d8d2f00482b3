module pgpilot.local/validate-bundle

go 1.24.6

require github.com/operator-framework/api v0.36.0
