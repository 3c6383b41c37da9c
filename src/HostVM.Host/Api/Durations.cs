using System.Globalization;

namespace HostVM.Host.Api;

/// <summary>Durations as people write them: a whole number and a unit, s, m, h, d or w ("90m", "30d").</summary>
public static class Durations
{
    public static TimeSpan Parse(string text, string field)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        if (t.Length >= 2 && long.TryParse(t.AsSpan(0, t.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > 0 && n <= 100_000)
        {
            TimeSpan? span = char.ToLowerInvariant(t[^1]) switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                'd' => TimeSpan.FromDays(n),
                'w' => TimeSpan.FromDays(7 * n),
                _ => null,
            };
            if (span is { } s && s <= TimeSpan.FromDays(3660))
            {
                return s;
            }
        }

        throw ApiProblem.BadRequest($"{field} '{text}': write a whole number and a unit (s, m, h, d, w), e.g. 30d; at most 10 years.", field);
    }
}
