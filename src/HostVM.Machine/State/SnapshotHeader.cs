namespace HostVM.Machine.State;

/// <summary>
/// The start of a snapshot's state file: its format version, its identity and, for a diff snapshot, the identity of the
/// snapshot it applies on (its parent), so that a chain of diffs is only ever restored in order onto the right base.
/// </summary>
public sealed record SnapshotHeader(int FormatVersion, Guid Id, Guid Parent, DateTimeOffset Created)
{
    /// <summary>A diff snapshot: its memory file holds only the pages dirtied since its parent.</summary>
    public bool IsDiff => Parent != Guid.Empty;
}
