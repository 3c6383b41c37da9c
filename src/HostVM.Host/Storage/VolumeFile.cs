namespace HostVM.Host.Storage;

/// <summary>
/// A volume as a VMM opens it: its file (read-write) and the files of its backing chain (read-only, in order), taken from
/// the inventory's records: never from the qcow2 headers, which a VMM that had the file could have rewritten.
/// </summary>
public sealed record VolumeFile(string Key, string Path, string Format, IReadOnlyList<string> BackingChain);
