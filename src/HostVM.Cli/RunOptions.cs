namespace HostVM.Cli;

/// <summary>What `hostvm run` was asked for, as typed (validated by <see cref="RunCommand.Run"/>).</summary>
public sealed record RunOptions
{
    public string? Kernel { get; init; }

    public string? Initrd { get; init; }

    public string? Append { get; init; }

    public string? Firmware { get; init; }

    public string Memory { get; init; } = "256M";

    public int Cpus { get; init; } = 1;

    public double? TimeoutSeconds { get; init; }

    public bool Stats { get; init; }

    public IReadOnlyList<string> Drives { get; init; } = [];

    public IReadOnlyList<string> Nets { get; init; } = [];

    public bool Rng { get; init; }

    public bool Balloon { get; init; }

    public bool LegacyVirtio { get; init; }

    /// <summary>--power-button: a virtio-input power button (Ctrl-A P presses it).</summary>
    public bool PowerButton { get; init; }

    /// <summary>--virtio-console socket=PATH, or null.</summary>
    public string? VirtioConsole { get; init; }
}
