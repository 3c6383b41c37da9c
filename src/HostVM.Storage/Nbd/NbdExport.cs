namespace HostVM.Storage.Nbd;

/// <summary>
/// A disk an <see cref="NbdServer"/> serves under <paramref name="Name"/>. The server never disposes
/// <paramref name="Device"/>: its owner does, after the server is stopped. With <paramref name="ReadOnly"/> (or a
/// read-only device) clients are told NBD_FLAG_READ_ONLY and writes fail with EPERM.
/// </summary>
public sealed record NbdExport(string Name, IBlockDevice Device, bool ReadOnly = false, string? Description = null);
