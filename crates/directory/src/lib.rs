//! Directory import from Microsoft Entra ID.
#![forbid(unsafe_code)]
