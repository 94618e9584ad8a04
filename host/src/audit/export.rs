//! Audit records as JSON lines or CSV, for export.

use serde_json::json;

use crate::store::AuditRecord;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`application/x-ndjson`).
    JsonLines,
    /// RFC 4180 CSV with a header row (`text/csv`).
    Csv,
}

impl Format {
    /// The format called `name` (`jsonl` or `csv`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::JsonLines => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// Its file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::JsonLines => "jsonl",
            Format::Csv => "csv",
        }
    }

    /// What comes before the first record.
    pub fn header(self) -> &'static str {
        match self {
            Format::JsonLines => "",
            Format::Csv => {
                "sequence,time_ms,kind,actor,action,tenant,connector,version,operation,agent,request_id,status,code,latency_us,detail,input,output\r\n"
            }
        }
    }

    /// One record, with its line ending.
    pub fn line(self, sequence: u64, record: &AuditRecord) -> String {
        match self {
            Format::JsonLines => {
                let mut value = json!(record);
                value["sequence"] = json!(sequence);
                format!("{value}\n")
            }
            Format::Csv => {
                let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
                let fields = [
                    sequence.to_string(),
                    record.time_ms.to_string(),
                    record.kind.as_str().to_owned(),
                    record.actor.clone(),
                    record.action.clone(),
                    record.tenant.clone().unwrap_or_default(),
                    record.connector.clone(),
                    record.version.clone().unwrap_or_default(),
                    record.operation.clone().unwrap_or_default(),
                    record.agent.clone().unwrap_or_default(),
                    record.request_id.clone().unwrap_or_default(),
                    record.status.clone().unwrap_or_default(),
                    record.code.clone().unwrap_or_default(),
                    number(record.latency_us),
                    record.detail.clone(),
                    record.input.clone().unwrap_or_default(),
                    record.output.clone().unwrap_or_default(),
                ];
                let cells: Vec<String> = fields.iter().map(|f| csv_cell(f)).collect();
                format!("{}\r\n", cells.join(","))
            }
        }
    }
}

/// A CSV cell: quoted when it holds a separator, quote or line break, and
/// with a leading `'` when a spreadsheet would read it as a formula.
fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditKind;

    fn record() -> AuditRecord {
        AuditRecord {
            time_ms: 7,
            kind: AuditKind::Call,
            actor: "sbk_1".into(),
            action: "call".into(),
            connector: "crm".into(),
            input: Some(r#"{"phone":"138****8000","note":"a, \"b\""}"#.into()),
            output: Some("=HYPERLINK(\"x\")".into()),
            latency_us: Some(1500),
            ..AuditRecord::default()
        }
    }

    #[test]
    fn csv_rows_have_every_column_quoted_where_needed_and_no_formulas() {
        let line = Format::Csv.line(3, &record());
        assert!(line.ends_with("\r\n"));
        assert!(line.starts_with("3,7,call,sbk_1,call,,crm,"), "{line}");
        assert!(
            line.contains(r#""{""phone"":""138****8000"",""note"":""a, \""b\""""}""#),
            "{line}"
        );
        assert!(line.contains(r#""'=HYPERLINK(""x"")""#), "{line}");
        let columns = Format::Csv.header().split(',').count();
        assert_eq!(columns, 17);
    }

    #[test]
    fn json_lines_carry_the_sequence() {
        let line = Format::JsonLines.line(3, &record());
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(value["sequence"], 3);
        assert_eq!(value["latency_us"], 1500);
        assert_eq!(value["kind"], "call");
    }
}
