//! `minitwin metrics`: the catalogue of every metric, with its type, unit and help.

use crate::cli::MetricsArgs;
use minitwin_components::monitor::catalog::CATALOG;
use std::io::Write;

pub fn main(args: MetricsArgs) -> u8 {
    let mut out = std::io::stdout().lock();
    let written = if args.csv {
        csv(&mut out)
    } else {
        table(&mut out)
    };
    match written {
        Ok(()) => 0,
        // A closed pipe (`| head`) is not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("error: cannot write the catalogue: {e}");
            1
        }
    }
}

fn table(out: &mut impl Write) -> std::io::Result<()> {
    let width = CATALOG.iter().map(|d| d.name.len()).max().unwrap_or(0);
    writeln!(
        out,
        "{} metrics (plus `up`, the monitor's per-target scrape success):\n",
        CATALOG.len()
    )?;
    for d in CATALOG {
        writeln!(
            out,
            "{:<width$}  {:<9}  {:<11}  {}",
            d.name,
            d.kind.name().split(' ').next().unwrap_or(""),
            d.unit,
            d.help
        )?;
    }
    Ok(())
}

fn csv(out: &mut impl Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["name", "type", "unit", "help"])?;
    for d in CATALOG {
        w.write_record([d.name, d.kind.name(), d.unit, d.help])?;
    }
    w.flush()
}
