//! Where a console burst keeps its samples: a file of its own, one JSON line each. A million
//! samples with their REPORT fields would take a few hundred megabytes in memory; the console
//! draws from histograms and counts, and needs the samples only to save the run, which reads
//! them back. The file has no name (it is unlinked when created), so nothing is left behind,
//! whatever way the console ends.

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Seek as _, SeekFrom, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use hybridlab_bench::model::Sample;

/// The samples of one burst.
#[derive(Debug, Default)]
pub struct SampleSpool {
    /// Opened at the first sample.
    file: Option<BufWriter<File>>,
    written: u64,
    /// The first write that failed: the spool is incomplete from then on, and says so.
    error: Option<String>,
}

impl SampleSpool {
    pub fn push(&mut self, sample: &Sample) {
        if self.error.is_some() {
            return;
        }
        if let Err(err) = self.write(sample) {
            self.error = Some(format!("keeping the samples on disk failed: {err}"));
        }
    }

    fn write(&mut self, sample: &Sample) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(BufWriter::new(tempfile::tempfile()?)),
        };
        serde_json::to_writer(&mut *file, sample)?;
        file.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Every sample pushed, in the order pushed.
    pub fn read_all(&mut self) -> Result<Vec<Sample>, String> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        let read = |file: &mut BufWriter<File>| -> std::io::Result<Vec<Sample>> {
            file.flush()?;
            let mut reader = BufReader::new(file.get_ref().try_clone()?);
            reader.seek(SeekFrom::Start(0))?;
            let mut samples = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line)? > 0 {
                samples.push(serde_json::from_str(&line)?);
                line.clear();
            }
            // The clone shares the offset: later samples go at the end again.
            file.get_mut().seek(SeekFrom::End(0))?;
            Ok(samples)
        };
        read(file).map_err(|err| format!("reading the samples back failed: {err}"))
    }
}

/// A spool shared by the console's state (which fills it) and the task that saves the run
/// (which reads it off the event loop). Equal when it is the same spool.
#[derive(Debug, Clone, Default)]
pub struct SharedSpool(Arc<Mutex<SampleSpool>>);

impl SharedSpool {
    pub fn with<R>(&self, f: impl FnOnce(&mut SampleSpool) -> R) -> R {
        // A panic while holding the lock leaves a spool that is still whole line by line.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl PartialEq for SharedSpool {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_bench::model::Outcome;

    #[test]
    fn samples_come_back_whole_and_in_order_and_more_can_follow() {
        let mut spool = SampleSpool::default();
        assert_eq!(spool.read_all(), Ok(Vec::new()));
        let sample = |seq| Sample {
            seq,
            intended_us: seq,
            sent_us: seq,
            done_us: seq + 900,
            outcome: Outcome::Ec2Error,
            lambda: None,
            ec2_ms: None,
            ec2_round_trip_ms: None,
            error: Some(format!("error {seq}\nwith a line break")),
        };
        for seq in 0..1000 {
            spool.push(&sample(seq));
        }
        let samples = spool.read_all().expect("reads back");
        assert_eq!(samples.len(), 1000);
        assert_eq!(samples[999], sample(999));
        spool.push(&sample(1000));
        assert_eq!(spool.read_all().expect("reads back").len(), 1001);
        assert_eq!(spool.len(), 1001);
    }
}
