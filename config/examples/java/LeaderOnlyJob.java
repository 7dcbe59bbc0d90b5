package com.example.jobs;

import java.time.Duration;

import org.springframework.http.client.SimpleClientHttpRequestFactory;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;
import org.springframework.web.client.RestClient;
import org.springframework.web.client.RestClientException;

/**
 * Runs a scheduled job only on the pod that raft-elector names as leader: the check used with
 * the old leader-elector sidecar, unchanged. {@code GET http://localhost:4040/} answers
 * {@code {"name":"<leader pod>"}}; this pod leads when that is its own name (HOSTNAME is the
 * pod name in Kubernetes).
 *
 * <p>Spring Framework 6.1+ (Spring Boot 3.2+) for {@link RestClient}; enable scheduling with
 * {@code @EnableScheduling} on a configuration class. RAFT_ELECTOR_URL overrides the
 * sidecar's address.
 */
@Component
public class LeaderOnlyJob {

    /** The part of the sidecar's answer the check needs. */
    record Leader(String name) {}

    private final String podName = System.getenv("HOSTNAME");

    private final RestClient elector;

    public LeaderOnlyJob() {
        SimpleClientHttpRequestFactory http = new SimpleClientHttpRequestFactory();
        http.setConnectTimeout(Duration.ofSeconds(1));
        http.setReadTimeout(Duration.ofSeconds(2));
        this.elector = RestClient.builder()
                .baseUrl(System.getenv().getOrDefault("RAFT_ELECTOR_URL", "http://localhost:4040"))
                .requestFactory(http)
                .build();
    }

    /** True when raft-elector names this pod as leader; false when it names another or cannot be asked. */
    public boolean isLeader() {
        try {
            Leader leader = elector.get().uri("/").retrieve().body(Leader.class);
            return leader != null && podName != null && podName.equals(leader.name());
        } catch (RestClientException e) {
            return false; // no answer means "not me": never assume leadership
        }
    }

    @Scheduled(cron = "0 */5 * * * *")
    public void run() {
        // Ask right before each run: leadership can move between two runs.
        if (!isLeader()) {
            return;
        }
        // ... the job that must run on one pod only ...
    }
}
