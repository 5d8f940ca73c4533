//! `behalf provision --csv`: the panel's export format, at least a `UPN` or `userPrincipalName`
//! column; other columns are ignored. A bad row is reported with its line number and the rest go on.

use std::collections::HashMap;
use std::io::Read;

use behalf_domain::Upn;

/// A usable row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub upn: Upn,
}

/// A row that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvProblem {
    pub line: u64,
    /// What the row held in the UPN column, as far as it could be read.
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvInput {
    pub rows: Vec<CsvRow>,
    pub problems: Vec<CsvProblem>,
}

/// The file as a whole is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("the CSV file is empty")]
    Empty,
    #[error("the CSV header has no UPN or userPrincipalName column (it has: {found})")]
    NoUpnColumn { found: String },
    #[error("cannot read the CSV header: {0}")]
    Header(String),
}

const UPN_COLUMNS: &[&str] = &["upn", "userprincipalname"];

/// Reads the CSV. Duplicates (UPNs compare case-insensitively) are problems naming the first line.
pub fn parse(mut input: impl Read) -> Result<CsvInput, CsvError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| CsvError::Header(e.to_string()))?;
    // The csv crate's own line count skips blank lines; counting newlines before a record's byte
    // offset gives the line an editor shows.
    let line_at = |offset: u64| {
        let mut end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        // A record's offset is where reading began, before any blank lines it skipped.
        while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
            end += 1;
        }
        bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64 + 1
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(&bytes[..]);
    let headers = reader
        .headers()
        .map_err(|e| CsvError::Header(e.to_string()))?
        .clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(CsvError::Empty);
    }
    let column = headers
        .iter()
        .position(|h| {
            UPN_COLUMNS.contains(
                &h.trim_start_matches('\u{feff}')
                    .trim()
                    .to_lowercase()
                    .as_str(),
            )
        })
        .ok_or_else(|| CsvError::NoUpnColumn {
            found: headers.iter().collect::<Vec<_>>().join(", "),
        })?;

    let mut input = CsvInput::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(index as u64 + 2, |p| line_at(p.byte()));
                input.problems.push(CsvProblem {
                    line,
                    value: String::new(),
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(index as u64 + 2, |p| line_at(p.byte()));
        if record.iter().all(str::is_empty) {
            continue; // a blank line is not a row
        }
        let value = record.get(column).unwrap_or_default().to_owned();
        if value.is_empty() {
            input.problems.push(CsvProblem {
                line,
                value,
                reason: "the UPN column is empty".into(),
            });
            continue;
        }
        match Upn::parse(&value) {
            Ok(upn) => match seen.get(&upn.key()) {
                Some(first) => input.problems.push(CsvProblem {
                    line,
                    value,
                    reason: format!("duplicate of line {first}"),
                }),
                None => {
                    seen.insert(upn.key(), line);
                    input.rows.push(CsvRow { line, upn });
                }
            },
            Err(e) => input.problems.push(CsvProblem {
                line,
                value,
                reason: e.to_string(),
            }),
        }
    }
    Ok(input)
}

#[cfg(test)]
mod tests;
