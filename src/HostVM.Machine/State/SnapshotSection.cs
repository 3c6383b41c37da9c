namespace HostVM.Machine.State;

/// <summary>
/// One section of a snapshot's state file. An optional one may be skipped by a reader that does not know its type (a later
/// minor addition); a reader refuses a required one it does not know.
/// </summary>
public sealed record SnapshotSection(SnapshotSectionType Type, ReadOnlyMemory<byte> Payload, bool Optional = false);
