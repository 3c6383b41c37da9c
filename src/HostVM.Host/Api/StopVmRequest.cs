namespace HostVM.Host.Api;

/// <summary>POST /v1/vms/{vm}/stop and /restart.</summary>
public sealed record StopVmRequest
{
    public bool? Force { get; init; }

    public int? TimeoutS { get; init; }
}
