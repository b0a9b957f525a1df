//! What a module's commands are: a `clap::Subcommand` enum that runs with what it needs
//! from the configuration. `state.rs` registers each module's commands, saying what to
//! give them; `cli.rs` parses and runs them. Modules implement this without seeing the
//! whole configuration.

/// A module's subcommands.
pub trait ModuleCommand: clap::Subcommand + Sized + 'static {
    /// What the commands need: usually the module's settings slice and what it connects
    /// to, built from the configuration by the registration.
    type Needs: 'static;

    fn run(self, needs: Self::Needs) -> impl Future<Output = anyhow::Result<()>>;
}
