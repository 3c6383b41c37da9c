namespace HostVM.Host.Api;

/// <summary>
/// A live block job on a VM's disk (GET /v1/vms/{vm}/disks/{disk}/job): <c>snapshot</c> (the disk so far becomes the
/// read-only <see cref="Layer"/>, a new overlay takes the writes), <c>commit</c> (the overlay merged down into the layer
/// below it) or <c>stream</c> (the base and layers pulled up into the overlay, which then stands alone). State: running,
/// completed, cancelled or failed (with <see cref="Error"/>); progress in bytes of the disk gone through.
/// </summary>
public sealed record DiskJobView(
    string Id,
    string Vm,
    string Disk,
    string Type,
    string State,
    long DoneBytes,
    long TotalBytes,
    string? Layer,
    string? Error,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt);
