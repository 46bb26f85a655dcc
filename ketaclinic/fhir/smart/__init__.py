"""SMART on FHIR: discovery, OAuth 2.0 authorization code with PKCE for staff apps and
client credentials with a signed JWT assertion for backend services (built on authlib)."""
