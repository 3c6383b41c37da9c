namespace HostVM.Cli.Api;

/// <summary>POST /v1/vms/{vm}/stop and /restart: kill at once, or after this many seconds of waiting for the guest.</summary>
public sealed record StopVmRequest
{
    public bool? Force { get; init; }

    public int? TimeoutS { get; init; }
}
