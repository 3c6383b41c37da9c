namespace HostVM.Host.Storage;

/// <summary>
/// A volume as a VMM opens it: its file (read-write) and the files of its backing chain (read-only, in order), taken from
/// the inventory's records: never from the qcow2 headers, which a VMM that had the file could have rewritten. A volume of
/// an nbd pool is reached through the daemon's Unix socket <see cref="Socket"/> (a jailed VMM has no network), and
/// <see cref="Path"/> is then its <c>nbd+unix://</c> URI.
/// </summary>
public sealed record VolumeFile(string Key, string Path, string Format, IReadOnlyList<string> BackingChain, string? Socket = null);
