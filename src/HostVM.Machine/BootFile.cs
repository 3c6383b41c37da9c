namespace HostVM.Machine;

/// <summary>A boot payload's bytes and the name to use for it in messages (usually its path).</summary>
public sealed record BootFile(string Name, ReadOnlyMemory<byte> Data);
