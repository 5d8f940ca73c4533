//! The admin panel's browser-test harness: a headless Chromium over WebDriver ([`browser`]) and
//! the real `behalf serve --sandbox` ([`server`]).
#![allow(dead_code)]

pub mod browser;
pub mod server;
