//! Reading typed values out of `Any` rows, with errors that name the table and column.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::error::corrupt;

pub(crate) struct Reader<'r> {
    pub row: &'r AnyRow,
    pub table: &'static str,
}

impl<'r> Reader<'r> {
    pub fn new(row: &'r AnyRow, table: &'static str) -> Self {
        Self { row, table }
    }

    pub fn text(&self, column: &str) -> Result<String, StoreError> {
        self.row
            .try_get::<String, _>(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.row
            .try_get::<Option<String>, _>(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.row
            .try_get::<i64, _>(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.row
            .try_get::<Option<i64>, _>(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(self.int(column)? != 0)
    }

    pub fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
        self.row
            .try_get::<Vec<u8>, _>(column)
            .map_err(|e| corrupt(self.table, format!("{column}: {e}")))
    }

    pub fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.row
            .try_get::<Option<Vec<u8>>, _>(column)
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
