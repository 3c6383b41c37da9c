using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>A request a fuzz target wants put on <paramref name="Queue"/>: its buffers in chain order (maybe in the wrong order).</summary>
internal sealed record FuzzRequest(int Queue, IReadOnlyList<DescriptorSegment> Segments);
