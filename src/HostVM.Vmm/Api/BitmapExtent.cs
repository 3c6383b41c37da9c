namespace HostVM.Vmm.Api;

/// <summary>A range of the disk a dirty bitmap has set (GET /hostvm/drives/{id}/bitmaps/{name}/extents).</summary>
public sealed record BitmapExtent(long Offset, long Length);
