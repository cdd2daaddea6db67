//! [`Cases`]: the bookkeeping of a table of hostile cases: every row counts
//! as one case, failures are collected (with the dialogue) and reported
//! together, the count per group is printed with `eprintln!`.

/// One group of hostile cases: counts rows, collects failures.
pub struct Cases {
    group: String,
    count: usize,
    failures: Vec<String>,
}

impl Cases {
    /// A new group.
    pub fn new(group: &str) -> Cases {
        Cases {
            group: group.to_string(),
            count: 0,
            failures: Vec::new(),
        }
    }

    /// One case; `Err` is a failure described by its text.
    pub fn record(&mut self, label: &str, result: Result<(), String>) {
        self.count += 1;
        if let Err(e) = result {
            self.failures.push(format!("[{label}] {e}"));
        }
    }

    /// One case that passed (its assertions panic on failure).
    pub fn pass(&mut self) {
        self.count += 1;
    }

    /// Number of cases so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Number of failures so far.
    pub fn failed(&self) -> usize {
        self.failures.len()
    }

    /// Print the count; panic with every failure.
    pub fn finish(self) {
        eprintln!(
            "CASES {}: {} cases, {} failed",
            self.group,
            self.count,
            self.failures.len()
        );
        if !self.failures.is_empty() {
            panic!(
                "{}: {} of {} cases failed:\n\n{}",
                self.group,
                self.failures.len(),
                self.count,
                self.failures.join("\n\n")
            );
        }
    }
}
