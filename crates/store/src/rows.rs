//! Reading typed values out of rows, with errors that name the table and column. A row is
//! anything with [`Columns`]: an `Any` row from sqlx, or a row of the SQLite read connections
//! (`readers`), so that one mapping per entity serves both.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::error::corrupt;

/// A row's columns by name, each read as nullable; the reason of a failure is a message.
pub(crate) trait Columns {
    fn opt_text(&self, column: &str) -> Result<Option<String>, String>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, String>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, String>;
}

impl Columns for AnyRow {
    fn opt_text(&self, column: &str) -> Result<Option<String>, String> {
        self.try_get::<Option<String>, _>(column)
            .map_err(|e| e.to_string())
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, String> {
        self.try_get::<Option<i64>, _>(column)
            .map_err(|e| e.to_string())
    }

    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, String> {
        self.try_get::<Option<Vec<u8>>, _>(column)
            .map_err(|e| e.to_string())
    }
}

pub(crate) struct Reader<'r, R: Columns = AnyRow> {
    pub row: &'r R,
    pub table: &'static str,
}

impl<'r, R: Columns> Reader<'r, R> {
    pub fn new(row: &'r R, table: &'static str) -> Self {
        Self { row, table }
    }

    fn required<T>(&self, column: &str, value: Result<Option<T>, String>) -> Result<T, StoreError> {
        match value {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(corrupt(self.table, format!("{column}: unexpected NULL"))),
            Err(e) => Err(corrupt(self.table, format!("{column}: {e}"))),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, StoreError> {
        self.required(column, self.row.opt_text(column))
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.row
            .opt_text(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.required(column, self.row.opt_int(column))
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.row
            .opt_int(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.int(column)? != 0)
    }

    pub fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.required(column, self.row.opt_bytes(column))
    }

    pub fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.row
            .opt_bytes(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn parse<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.text(column)?;
        text.parse()
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn opt_parse<T>(&self, column: &str) -> Result<Option<T>, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.opt_text(column)? {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| corrupt(self.table, format!("{column}: {e}"))),
        }
    }

    pub fn json(&self, column: &str) -> Result<serde_json::Value, StoreError> {
        let text = self.text(column)?;
        serde_json::from_str(&text).map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }
}

pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}
