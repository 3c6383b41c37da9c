namespace HostVM.Cli.Api;

/// <summary>How many VMs the host has, and how many run.</summary>
public sealed record VmCounts
{
    public int Total { get; init; }

    public int Running { get; init; }
}
