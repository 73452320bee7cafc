//! The results model: tables of interleaved samples, targets, series for
//! charts; JSON via serde and Markdown rendering.

use serde::{Deserialize, Serialize};

use crate::util::stats;

/// JSON has no NaN: serde_json writes it as `null`; read that back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Which way is better for a table's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Better {
    Higher,
    Lower,
}

/// One variant (a library and its configuration) in a table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub variant: String,
    /// One value per repetition, in run order.
    pub samples: Vec<f64>,
    #[serde(deserialize_with = "nan_if_null")]
    pub median: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub min: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub max: f64,
    /// procession's median against this row's (oriented by the table:
    /// throughput = procession / peer; time = procession / peer); `None` for
    /// procession's own rows and rows without data.
    pub ratio: Option<f64>,
    pub note: Option<String>,
    /// For a procession row other than the reference (the async rows): its
    /// median against named peers, shown in the ratio column.
    #[serde(default)]
    pub vs: Option<String>,
}

/// One measured configuration of a scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Table {
    pub id: String,
    pub scenario: u32,
    pub title: String,
    pub unit: String,
    pub better: Better,
    /// The variant the ratios are computed from.
    pub reference: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(id: &str, scenario: u32, title: &str, unit: &str, better: Better) -> Table {
        Table {
            id: id.into(),
            scenario,
            title: title.into(),
            unit: unit.into(),
            better,
            reference: "procession".into(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row from samples (ratios are filled by [`Table::finish`]).
    pub fn push(&mut self, variant: &str, samples: Vec<f64>) {
        let (median, min, max) = if samples.is_empty() {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            stats(&samples)
        };
        self.rows.push(Row {
            variant: variant.into(),
            samples,
            median,
            min,
            max,
            ratio: None,
            note: None,
            vs: None,
        });
    }

    /// A row that could not be measured, with the reason.
    pub fn push_na(&mut self, variant: &str, reason: &str) {
        self.push(variant, Vec::new());
        if let Some(r) = self.rows.last_mut() {
            r.note = Some(reason.into());
        }
    }

    pub fn note_row(&mut self, variant: &str, note: &str) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.variant == variant) {
            r.note = Some(note.into());
        }
    }

    /// Computes the ratios against the reference row.
    pub fn finish(mut self) -> Table {
        let reference = self
            .rows
            .iter()
            .find(|r| r.variant == self.reference)
            .map(|r| r.median);
        for r in &mut self.rows {
            if r.variant == self.reference || r.variant.starts_with("procession") {
                continue;
            }
            r.ratio = match reference {
                Some(p) if p.is_finite() && r.median.is_finite() && r.median != 0.0 => {
                    Some(p / r.median)
                }
                _ => None,
            };
        }
        self
    }

    /// Sets the ratio cell of `variant` (a procession row) to its median
    /// against each `(label, peer)`, oriented as the other ratios.
    pub fn set_vs(&mut self, variant: &str, peers: &[(&str, &str)]) {
        let parts: Vec<String> = peers
            .iter()
            .filter_map(|(label, peer)| {
                self.ratio(variant, peer)
                    .map(|r| format!("{r:.2} vs {label}"))
            })
            .collect();
        if let Some(row) = self.rows.iter_mut().find(|r| r.variant == variant) {
            row.vs = (!parts.is_empty()).then(|| parts.join("; "));
        }
    }

    pub fn median(&self, variant: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.variant == variant)
            .map(|r| r.median)
            .filter(|m| m.is_finite())
    }

    /// The (min, max) of a variant's samples.
    pub fn range(&self, variant: &str) -> Option<(f64, f64)> {
        self.rows
            .iter()
            .find(|r| r.variant == variant)
            .map(|r| (r.min, r.max))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
    }

    /// `reference / variant` medians.
    pub fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        Some(self.median(a)? / self.median(b)?)
    }

    fn ratio_header(&self) -> &'static str {
        match self.better {
            Better::Higher => "procession ÷ peer (> 1: procession better)",
            Better::Lower => "procession ÷ peer (< 1: procession better)",
        }
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let dir = match self.better {
            Better::Higher => "higher is better",
            Better::Lower => "lower is better",
        };
        s.push_str(&format!(
            "**{}** ({}, {}; {} repetitions interleaved)\n\n",
            self.title,
            self.unit,
            dir,
            self.rows.iter().map(|r| r.samples.len()).max().unwrap_or(0)
        ));
        s.push_str(&format!(
            "| variant | median | min | max | {} |\n|---|---:|---:|---:|---:|\n",
            self.ratio_header()
        ));
        for r in &self.rows {
            let ratio = match (r.ratio, &r.note) {
                _ if r.vs.is_some() => r.vs.clone().unwrap_or_default(),
                (Some(x), _) => format!("{x:.2}"),
                (None, _) if r.variant.starts_with("procession") => "—".into(),
                _ => "n/a".into(),
            };
            if r.samples.is_empty() {
                s.push_str(&format!(
                    "| {} | n/a | | | {} |\n",
                    r.variant,
                    r.note.as_deref().unwrap_or("")
                ));
                continue;
            }
            let variant = match &r.note {
                Some(n) => format!("{} ({n})", r.variant),
                None => r.variant.clone(),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                variant,
                fmt_num(r.median),
                fmt_num(r.min),
                fmt_num(r.max),
                ratio
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("\n{n}\n"));
        }
        s
    }
}

/// A number with sensible precision.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else if x.abs() >= 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// A target of the issue and whether this run met it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub scenario: u32,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
    /// The measured ceiling that shows why a target is out of reach (or how
    /// close the kernel allows), shown when the target is not met.
    #[serde(default)]
    pub ceiling: Option<String>,
}

impl Target {
    /// `value >= min` (or `<= max` with `at_most`).
    pub fn check(
        scenario: u32,
        target: &str,
        value: Option<f64>,
        bound: f64,
        at_most: bool,
    ) -> Target {
        let (measured, met) = match value {
            Some(v) if v.is_finite() => (
                fmt_num(v),
                Some(if at_most { v <= bound } else { v >= bound }),
            ),
            _ => ("n/a".into(), None),
        };
        Target {
            scenario,
            target: target.into(),
            measured,
            met,
            ceiling: None,
        }
    }

    pub fn with_ceiling(mut self, text: Option<String>) -> Target {
        self.ceiling = text;
        self
    }

    pub fn with_measured(mut self, text: String) -> Target {
        self.measured = text;
        self
    }
}

/// A named series of (x, y) points for a line chart.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Everything a scenario produced.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub tables: Vec<Table>,
    pub targets: Vec<Target>,
    /// Series for charts, keyed by chart id.
    pub series: Vec<(String, Vec<Series>)>,
    /// Extra Markdown (explanations) shown under the scenario's tables.
    pub text: Vec<String>,
}
