namespace HostVM.Vmm.Api;

/// <summary>
/// A persistent dirty bitmap of a qcow2 drive (GET /hostvm/drives/{id}/bitmaps): which parts of the disk were written since
/// it was made or cleared, in units of <see cref="GranularityBytes"/>. A stale one (its image was not closed cleanly while it
/// recorded) gives no extents: a backup from it must read everything.
/// </summary>
public sealed record DirtyBitmap(string Name, long GranularityBytes, bool Enabled, bool Stale);
