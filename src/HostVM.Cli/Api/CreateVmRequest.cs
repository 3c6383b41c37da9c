namespace HostVM.Cli.Api;

/// <summary>POST /v1/vms. A null field is left out, so the daemon applies its default.</summary>
public sealed record CreateVmRequest
{
    public required string Name { get; init; }

    public string? Image { get; init; }

    /// <summary>A stopped VM to clone instead of an image.</summary>
    public string? CloneOf { get; init; }

    /// <summary>The project it goes into (null: the token's, else "default").</summary>
    public string? Project { get; init; }

    public int? Vcpus { get; init; }

    public long? MemoryMib { get; init; }

    public int? CpuCapPercent { get; init; }

    public int? CpuWeight { get; init; }

    public long? DiskMib { get; init; }

    public string? BootArgs { get; init; }

    public string? RestartPolicy { get; init; }

    public IReadOnlyList<VmNetwork>? Networks { get; init; }

    /// <summary>Volumes (POOL/NAME) to attach as further disks.</summary>
    public IReadOnlyList<string>? Volumes { get; init; }

    public RateLimits? DiskLimits { get; init; }

    public RateLimits? NicLimits { get; init; }

    public bool? Balloon { get; init; }

    public bool? Start { get; init; }

    /// <summary>cloud-init user-data, as it is (a cloud-init seed disk).</summary>
    public string? UserData { get; init; }

    /// <summary>OpenSSH public keys for <see cref="User"/>, in a #cloud-config the daemon writes.</summary>
    public IReadOnlyList<string>? SshKeys { get; init; }

    public string? Hostname { get; init; }

    public string? User { get; init; }
}
