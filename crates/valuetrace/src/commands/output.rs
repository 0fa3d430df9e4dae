//! Where a query's answer goes: its tables and summary lines to the terminal, or, with `--csv`,
//! one of its tables as CSV on stdout (for a spreadsheet or a script).
//!
//! The CSV is made from the very table the terminal shows, so the two never disagree; only the
//! decorations a machine would trip over go: thousands separators in numbers (`1,234.5` →
//! `1234.5`) and the `–` that marks a missing value (an empty field).

use anyhow::{Context, bail};
use comfy_table::Table;
use std::fmt::Display;

/// The tables and lines of one answer, printed as they come or collected for `--csv`.
pub struct Output {
    /// `Some(name)` under `--csv`: the table to write (`""`: the answer's first table).
    csv: Option<String>,
    tables: Vec<(String, Table)>,
}

impl Output {
    /// Prints everything to the terminal.
    pub fn terminal() -> Output {
        Output::new(None)
    }

    /// `csv`: `None` for the terminal, else the name of the table to write as CSV (`""` for the
    /// first).
    pub fn new(csv: Option<String>) -> Output {
        Output {
            csv,
            tables: Vec::new(),
        }
    }

    /// A summary line: printed on the terminal, left out of CSV (it is not a row).
    pub fn line(&mut self, text: impl Display) {
        if self.csv.is_none() {
            println!("{text}");
        }
    }

    /// A table named `name` (what `--csv NAME` selects).
    pub fn table(&mut self, name: impl Into<String>, table: Table) {
        if self.csv.is_none() {
            println!("{table}");
        } else {
            self.tables.push((name.into(), table));
        }
    }

    /// The tables collected under `--csv`.
    #[cfg(test)]
    pub fn tables(&self) -> &[(String, Table)] {
        &self.tables
    }

    /// Under `--csv`, writes the selected table to stdout.
    pub fn finish(self) -> anyhow::Result<()> {
        let Some(wanted) = self.csv else {
            return Ok(());
        };
        let names: Vec<&str> = self.tables.iter().map(|(name, _)| name.as_str()).collect();
        let chosen = if wanted.is_empty() {
            self.tables.first()
        } else {
            self.tables.iter().find(|(name, _)| *name == wanted)
        };
        let Some((_, table)) = chosen else {
            if names.is_empty() {
                bail!("this answer has no table to write as CSV");
            }
            bail!(
                "no table `{wanted}` in this answer; --csv takes one of: {}",
                names.join(", ")
            );
        };
        let stdout = std::io::stdout();
        write_csv(table, stdout.lock())
    }
}

/// Writes `table` (header, then rows) as RFC 4180 CSV.
pub fn write_csv(table: &Table, writer: impl std::io::Write) -> anyhow::Result<()> {
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(writer);
    if let Some(header) = table.header() {
        csv.write_record(header.cell_iter().map(|cell| cell.content()))
            .context("writing CSV")?;
    }
    for row in table.row_iter() {
        csv.write_record(row.cell_iter().map(|cell| csv_field(&cell.content())))
            .context("writing CSV")?;
    }
    csv.flush().context("writing CSV")?;
    Ok(())
}

/// A table cell as a CSV field: `–` (missing) is empty, a number loses its thousands separators.
pub fn csv_field(cell: &str) -> String {
    if cell == "–" {
        return String::new();
    }
    let plain = cell.replace(',', "");
    let digits = plain.strip_prefix(['-', '+']).unwrap_or(&plain);
    let grouped_number = cell.contains(',')
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|&c| c == '.').count() <= 1;
    if grouped_number {
        plain
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_lose_grouping_and_dashes_only() {
        assert_eq!(csv_field("1,234,567.89"), "1234567.89");
        assert_eq!(csv_field("-1,234"), "-1234");
        assert_eq!(csv_field("–"), "");
        assert_eq!(csv_field("12.5%"), "12.5%");
        assert_eq!(csv_field("stripe 3, paypal 1"), "stripe 3, paypal 1");
        assert_eq!(csv_field("POST /api/checkout"), "POST /api/checkout");
    }

    #[test]
    fn a_table_round_trips_through_a_csv_reader() {
        let mut table = Table::new();
        table.set_header(["endpoint", "calls", "errors"]);
        table.add_row([
            "POST /api/checkout",
            "1,234",
            "card_declined 3, \"timeout\" 1",
        ]);
        table.add_row(["GET /api/products", "–", ""]);
        let mut bytes = Vec::new();
        write_csv(&table, &mut bytes).expect("csv");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, ["endpoint", "calls", "errors"]);
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|record| record.expect("record").iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec![
                    "POST /api/checkout",
                    "1234",
                    "card_declined 3, \"timeout\" 1"
                ],
                vec!["GET /api/products", "", ""],
            ]
        );
    }

    #[test]
    fn an_unknown_table_name_lists_the_tables() {
        let mut output = Output::new(Some("nope".into()));
        output.table("classes", Table::new());
        output.table("patterns", Table::new());
        let error = output.finish().expect_err("unknown table");
        assert_eq!(
            error.to_string(),
            "no table `nope` in this answer; --csv takes one of: classes, patterns"
        );
    }
}
