using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>
/// PUT /hostvm/drives/{id}/job, HostVM's live block jobs on a qcow2 drive (the daemon arranges the files; the VMM moves
/// the running drive between them):
/// <list type="bullet">
/// <item><c>reopen</c>: the drive's file is now a new, empty overlay on the image the drive had (an external snapshot):
/// open it over the image already open, and carry the dirty bitmaps into it;</item>
/// <item><c>commit</c>: copy the active layer into its backing file (opened for writing), mirroring guest writes, until
/// the two read alike (state <c>ready</c>); then <c>complete</c> makes the backing file the drive;</item>
/// <item><c>stream</c>: copy what the backing chain provides into the active layer, then drop the backing file;</item>
/// <item><c>cancel</c>: stop a running commit or stream; what was copied stays (the guest sees the same disk).</item>
/// </list>
/// </summary>
public sealed record DriveJobRequest
{
    [JsonPropertyName("action")]
    public string? Action { get; init; }
}
