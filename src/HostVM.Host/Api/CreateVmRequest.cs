using HostVM.Host.Inventory;

namespace HostVM.Host.Api;

/// <summary>POST /v1/vms.</summary>
public sealed record CreateVmRequest
{
    public string? Name { get; init; }

    /// <summary>The project it goes into (default: the token's, or "default").</summary>
    public string? Project { get; init; }

    public string? Image { get; init; }

    /// <summary>A stopped VM of the project to clone (instead of an image): its disk without a copy, and its settings where the request gives none.</summary>
    public string? CloneOf { get; init; }

    public int? Vcpus { get; init; }

    public long? MemoryMib { get; init; }

    public int? CpuCapPercent { get; init; }

    public int? CpuWeight { get; init; }

    public long? DiskMib { get; init; }

    /// <summary>Volumes of its project (<c>POOL/NAME</c>) to attach as further disks; each has one VM at a time.</summary>
    public IReadOnlyList<string>? Volumes { get; init; }

    public string? BootArgs { get; init; }

    public string? RestartPolicy { get; init; }

    public IReadOnlyList<NetworkAttachment>? Networks { get; init; }

    public RateLimit? DiskLimits { get; init; }

    public RateLimit? NicLimits { get; init; }

    public bool? Balloon { get; init; }

    public bool? Start { get; init; }

    /// <summary>cloud-init user-data, used as it is (at most 32 KiB); excludes <see cref="SshKeys"/> and <see cref="User"/>.</summary>
    public string? UserData { get; init; }

    /// <summary>OpenSSH public keys for <see cref="User"/>, in a #cloud-config HostVM writes.</summary>
    public IReadOnlyList<string>? SshKeys { get; init; }

    /// <summary>The guest's host name (a DNS label); default: the VM's name.</summary>
    public string? Hostname { get; init; }

    /// <summary>The user the SSH keys are for, with sudo; default <c>debian</c>.</summary>
    public string? User { get; init; }
}
